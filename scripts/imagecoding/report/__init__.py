"""The one report renderer and its templates."""
