{
  "targets": [
    {
      "target_name": "fastjpeg",
      "sources": ["fastjpeg.c"],
      "cflags": ["-O3", "-std=c11", "-Wall"],
      "libraries": ["-ljpeg"]
    }
  ]
}
