"""monitor.api"""
