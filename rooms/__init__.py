"""The rooms service: bookings tied to room and booth zones, check-in and release from presence,
a live floor view, presence for unified communications, and Home Assistant discovery.

It runs in the office beside the console, never on a Pi. It reads what the devices already
publish (retained occupancy, status, access events) and talks to the calendars and UC servers.
"""
