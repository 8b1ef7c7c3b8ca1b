"""The MQTT link: topics, payload models, and the one module that owns paho."""
