"""The web console under ``/ui/``: server-rendered Jinja2 pages, SVG pictures, a little JavaScript.

* :mod:`~monitor.api.console.session` — users, signed session cookies, CSRF tokens, argon2 passwords;
* :mod:`~monitor.api.console.pages` — the pages (reads only; PromQL through the ad-hoc query engine);
* :mod:`~monitor.api.console.actions` — the forms (acknowledge, resolve, silences), through the
  same pipeline services as the API, which audit them;
* :mod:`~monitor.api.console.render` — sparklines, bars and graphs as SVG, the Jinja2 environment.

:func:`monitor.api.app.create_app` mounts :data:`ROUTES` when it is given
:class:`~monitor.api.deps.ConsoleDeps` and keeps a :class:`ConsoleApp` on ``app.state.console``.
Each route is in :data:`monitor.api.access.ROUTE_ACCESS` (no token: the session is checked here;
forms bounded to :data:`monitor.api.access.CONSOLE_FORM_LIMIT`).
"""

from __future__ import annotations

from dataclasses import dataclass

from jinja2 import Environment
from starlette.routing import Route

from monitor.api.console import actions, incident_pages, oncall_pages, pages
from monitor.api.console.render import environment
from monitor.api.console.session import Sessions
from monitor.api.deps import ApiDeps, ConsoleDeps


@dataclass
class ConsoleApp:
    """The console's state on ``app.state.console``: its sessions and its template environment."""

    sessions: Sessions
    env: Environment

    @classmethod
    def build(cls, deps: ApiDeps, console: ConsoleDeps) -> ConsoleApp:
        """Return the console state reading ``console.settings`` and ``deps.settings`` on every request."""
        return cls(Sessions(console.settings, deps.settings, console.users), environment())


ROUTES = [
    Route("/ui/", pages.overview, methods=["GET"]),
    Route("/ui/login", pages.login_page, methods=["GET"]),
    Route("/ui/login", actions.login, methods=["POST"]),
    Route("/ui/logout", actions.logout, methods=["POST"]),
    Route("/ui/alerts", pages.alerts_page, methods=["GET"]),
    Route("/ui/alerts/{fingerprint}", pages.alert_page, methods=["GET"]),
    Route("/ui/alerts/{fingerprint}/{action}", actions.alert_action, methods=["POST"]),
    Route("/ui/silences", pages.silences_page, methods=["GET"]),
    Route("/ui/silences", actions.create_silence, methods=["POST"]),
    Route("/ui/silences/{id}/expire", actions.expire_silence, methods=["POST"]),
    Route("/ui/rules", pages.rules_page, methods=["GET"]),
    Route("/ui/probes", pages.probes_page, methods=["GET"]),
    Route("/ui/query", pages.query_page, methods=["GET"]),
    Route("/ui/static/{name}", pages.static, methods=["GET"]),
    # on-call and incidents (oncall_pages, incident_pages)
    Route("/ui/oncall", oncall_pages.oncall_page, methods=["GET"]),
    Route("/ui/oncall/overrides", oncall_pages.add_override_form, methods=["POST"]),
    Route("/ui/oncall/overrides/{id}/remove", oncall_pages.remove_override_form, methods=["POST"]),
    Route("/ui/incidents", incident_pages.incidents_page, methods=["GET"]),
    Route("/ui/incidents/{id}", incident_pages.incident_page, methods=["GET"]),
    Route("/ui/incidents/{id}/notes", incident_pages.add_note_form, methods=["POST"]),
    Route("/ui/incidents/{id}/updates", incident_pages.add_update_form, methods=["POST"]),
]

__all__ = ["ConsoleApp", "ROUTES"]
