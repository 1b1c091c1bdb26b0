"""Charter: policy as a service for clouds and clusters."""

__version__ = "0.1.0"
