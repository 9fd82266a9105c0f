from schedsweep.cli import main

main()
