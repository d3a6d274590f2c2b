"""monitor.store"""
