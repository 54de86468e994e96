{
  "targets": [
    {
      "target_name": "fastjpeg",
      "sources": ["fastjpeg.c", "fastjpeg_core.c"],
      "cflags": ["-O3", "-std=c11", "-Wall", "-ffp-contract=off"],
      "libraries": ["-ljpeg"]
    }
  ]
}
