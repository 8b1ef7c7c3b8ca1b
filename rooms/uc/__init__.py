"""Presence for unified communications: opted-in people's status at Matrix or Microsoft Graph.

See docs/uc-presence.md for what is sent, to whom and when.
"""
