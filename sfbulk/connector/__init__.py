"""The Salesforce Bulk connector: its bundle (operations as data), connections and the token life cycle.

Nothing is imported here: the bundle loader must not pull in HTTP (start-up time of the CLI). Import
``sfbulk.connector.connection`` (or ``from sfbulk import Connector``) for the Python API.
"""
