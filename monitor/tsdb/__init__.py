"""monitor.tsdb"""
