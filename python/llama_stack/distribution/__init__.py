"""Distribution-level configuration: run configs, build configs and provider instances."""
