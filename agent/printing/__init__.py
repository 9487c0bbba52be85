"""Printing: a done job's result on paper, through the booth's CUPS queue.

model.py   a print record and its states (queued -> sent -> printing -> printed | failed | held)
store.py   print records in their own table of the queue database
layout.py  the page for the paper (Pillow -> a PDF the size of the paper)
limits.py  copies, prints per job, prints per event, the cool-down
service.py the printer thread: sends, follows each print in CUPS, watches the queue's state
printer_state.py  the queue's state as {state, detail}

Nothing is imported here: the HTTP API needs requests.py without Pillow and the CUPS tools being loaded.
"""
