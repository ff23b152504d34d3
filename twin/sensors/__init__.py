"""Live sensor data: messages, the sensors file, validation and quarantine, storage, feeds."""
