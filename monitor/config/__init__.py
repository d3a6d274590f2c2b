"""The validated model of ``monitor.yaml`` and its loader.

``load_config(path)`` returns a fully defaulted :class:`Config` or raises
:class:`~monitor.errors.ConfigErrors` listing every error as ``file:line:col: key.path: message``.
"""

from monitor.config.loader import check_config_file, load_config, load_config_text
from monitor.config.model import Config

__all__ = ["Config", "check_config_file", "load_config", "load_config_text"]
