"""Alerts to an organisation's owners: gateways, site beacons and campaign budgets that need a person."""
