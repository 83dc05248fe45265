"""Thin Functions triggers and durable functions over `shared/`, one df.Blueprint per module."""
