"""The calculator service: scenes (with QR codes and door posters), cited emission
factors, and trip, life and event footprints (SPEC §4 "Scenes", "Estimates")."""
