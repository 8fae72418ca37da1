"""Config front-ends: YAML and Synapse XML, both building the same mediator tree."""
