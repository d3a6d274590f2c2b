"""monitor.notify"""
