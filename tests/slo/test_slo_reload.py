"""SLO changes reload like rule files: all-or-nothing, through ``POST /-/reload``."""

from __future__ import annotations

from tests.support.daemon_helpers import run_daemon, write_config

SLO_FILE = """\
slos:
  - service: database
    name: availability
    objective: {objective}
    sli:
      probe: {{selector: '{{kind="database"}}'}}
"""


async def _groups(d) -> dict[str, list[str]]:
    r = await d.get("/api/v1/rules")
    assert r.status_code == 200
    return {g["name"]: [rule["name"] for rule in g["rules"]] for g in r.json()["data"]["groups"]}


async def test_an_slo_file_change_reloads_and_a_bad_one_keeps_the_running_rules(tmp_path):
    (tmp_path / "slos.yaml").write_text(SLO_FILE.format(objective=99.9))
    cfg = write_config(tmp_path, "slo_files: [slos.yaml]\n")
    async with run_daemon(cfg) as d:
        groups = await _groups(d)
        assert list(groups) == ["slo-database-availability"]
        assert "DatabaseAvailabilityBudgetBurnPageFast" in groups["slo-database-availability"]
        r = await d.query('slo:objective:ratio')
        assert r.json()["data"]["result"][0]["value"][1] == "0.999"

        # a second SLO appears after a reload
        (tmp_path / "slos.yaml").write_text(SLO_FILE.format(objective=99.9)
                                            + SLO_FILE.format(objective=99.5).split("slos:\n", 1)[1]
                                            .replace("service: database", "service: db2"))
        r = await d.post("/-/reload")
        assert r.status_code == 200, r.text
        assert sorted(await _groups(d)) == ["slo-database-availability", "slo-db2-availability"]

        # an invalid SLO file is rejected with its position; the running rules stay
        (tmp_path / "slos.yaml").write_text(SLO_FILE.format(objective=100))
        r = await d.post("/-/reload")
        assert r.status_code >= 400
        assert "slos.yaml:4:5: slos[0].objective: must be less than 100.0" in r.text
        assert sorted(await _groups(d)) == ["slo-database-availability", "slo-db2-availability"]
