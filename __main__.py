from hetplan.cli import main

main()
