from litemlops.cli import main

main()
