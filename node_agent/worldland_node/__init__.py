"""WorldLand Cloud's provider agent: registers a GPU host and runs its rentals in Docker with root SSH."""

__version__ = "0.1.0"
