from stsync.cli.main import run

run()
