"""Hostile input files, generated at test time, for the bad-input tests of the command line and the Data page."""
