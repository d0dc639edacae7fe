from stsync.cli.entry import run

run()
