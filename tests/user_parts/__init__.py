"""User parts the tests load by import path, as a user's module would be loaded."""
