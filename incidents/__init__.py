"""What happened and where: the incident model, coordinate systems, geocoding and grading."""
