"""The beat schedule of the fleet's own jobs."""
