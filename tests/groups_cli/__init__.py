"""The cluster service from the client API and the command line."""
