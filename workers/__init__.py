"""Long-running processes beside the web app (see the Procfile).

poller: the city's 311 feed (Socrata erm2-nwe9) into intake; replay: a historical export fed at
N× speed, optionally worked by simulated officers. Both write only through board.usecases.
"""
