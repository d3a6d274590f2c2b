"""monitor.promql"""
