"""Config front-ends: YAML and Synapse XML, both building the same mediator tree.

``load_paths(paths, connectors=...)`` reads files and folders all-or-nothing and returns a
``LoadedConfig`` (proxies, sequences, local entries); see docs/yaml-format.md for the YAML format.
"""

from sfbulk.config.loader import LoadedConfig, load_paths

__all__ = ["LoadedConfig", "load_paths"]
