"""Validation against human coders: a sample out to Label Studio or a sheet, codes back in, agreement metrics."""
