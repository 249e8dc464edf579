from jobmedic.main import main

main()
