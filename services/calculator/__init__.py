"""The calculator service: scenes (with QR codes and door posters), cited emission
factors, and trip, life and event footprints (docs/contract.md §5, routes tagged calculator)."""
