from tfstyle.cli.main import run

run()
