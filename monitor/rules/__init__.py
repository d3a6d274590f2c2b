"""monitor.rules"""
