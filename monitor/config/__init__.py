"""monitor.config"""
