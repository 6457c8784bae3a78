from laxchange.cli import main

main()
