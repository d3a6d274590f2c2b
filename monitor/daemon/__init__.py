"""monitor.daemon"""
