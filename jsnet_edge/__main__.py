from jsnet_edge.cli import main

main()
