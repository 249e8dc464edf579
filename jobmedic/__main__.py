from jobmedic.cli import main

main()
