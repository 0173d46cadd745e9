"""A package only so that import-linter can check these modules (.importlinter, `make lint`)."""
