"""monitor.alerting"""
