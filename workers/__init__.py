"""Long-running processes beside the web app (see the Procfile).

poller: the city's 311 feed (Socrata erm2-nwe9) into intake; replay: a historical export fed at
N× speed, optionally worked by simulated officers; deadlines: overdue events as deadlines pass.
All write only through board.usecases, and each is built by board.bootstrap.
"""
