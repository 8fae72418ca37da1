"""The connector bundle (connector.yaml + operations/*.yaml + templates/) read into frozen definitions."""
