"""GOLD Studio's engine: tasks, the GOLD loop, students, teachers and the store. Never imports streamlit."""

__version__ = "0.1.0"
