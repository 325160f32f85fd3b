from pushcut.cli import main

main()
