from tfstyle.cli import run

run()
