"""monitor.escalation"""
