"""The security office: central log, alarms, search, roll call."""
